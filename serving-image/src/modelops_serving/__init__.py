"""The serving image: an inference server for one model version (LiteRT, TF Serving REST and
Open Inference Protocol), and the init step that fetches and verifies that version."""
