"""Contracts shared by the operator, the training image and the serving image.

Each contract is defined once here and imported by both sides; nothing in this
package does I/O beyond reading and writing the files the contract names.
"""
API_VERSION = "modelops.io/v1alpha1"
