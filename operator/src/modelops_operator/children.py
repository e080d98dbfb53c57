"""One pass's reads and writes of a ModelDeployment's children, never touching a stranger's.

Each child is read at most once per pass; what stands in the way of a wanted name is judged by
the pure `ownership` rules, and deletes carry the uid read as a precondition, so an object
replaced by someone else in between is left alone.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Mapping

from . import builders as b
from . import constants as c
from . import pipeline, stuck
from .kube import ConflictError, Kube
from .ownership import FOREIGN, OURS, InTheWay, in_the_way, verdict

log = logging.getLogger(__name__)


class Children:
    def __init__(self, kube: Kube, owner: b.Owner):
        self.kube = kube
        self.owner = owner
        self._read: dict[tuple[str, str], dict[str, Any] | None] = {}

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        if (kind, name) not in self._read:
            self._read[(kind, name)] = self.kube.read(kind, self.owner.namespace, name)
        return self._read[(kind, name)]

    def job(self, name: str, spec_hash: str | None = None) -> pipeline.JobState | None:
        """The stage Job as observed, or None when absent or not ours (never judge a stranger's report)."""
        job = self.read("Job", name)
        if job is None or verdict(job, self.owner.uid, self.owner.name, spec_hash) != OURS:
            return None
        state = pipeline.job_state(job, [])
        # Running, or suspended until Kueue admits it: its pods have nothing to say yet.
        if state.active and (state.suspended or not stuck.starting(job)):
            return state
        # By the Job's uid: the pods of an earlier Job of the same name may still be there.
        pods = self.kube.list("Pod", self.owner.namespace, f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")
        if not state.active:   # finished: the pods' termination messages carry the outcome
            return pipeline.job_state(job, pods)
        # Starting: say why it is not running, when Kubernetes knows (pods are not watched, so check again soon).
        # The Job's own events explain pods it could not create (all of them, or one worker of several).
        job_events = self.kube.warning_events(self.owner.namespace, "Job", name)
        events = job_events if stuck.pods_missing(job, pods) else []
        for pod in stuck.pods_to_ask_about(pods)[:1]:
            events += self.kube.warning_events(self.owner.namespace, "Pod", pod)
        return dataclasses.replace(state, starting=True, stuck=stuck.diagnose(pods, events))

    def deployment(self, name: str | None = None) -> pipeline.DeploymentState | None:
        """The serving Deployment (or the one named, the canary) as observed; None when absent or not ours."""
        found = self.read("Deployment", name or b.serving_name(self.owner))
        if found is None or verdict(found, self.owner.uid, self.owner.name) != OURS:
            return None
        state = pipeline.deployment_state(found)
        if state.rolled_out or not state.desired:
            return state
        # Rolling out: the new version's pods, and the events of one that says nothing itself (a mount).
        pods = self.kube.list("Pod", self.owner.namespace,
                              f"{b.serving_label_selector(self.owner)},{c.LABEL_VERSION}={state.version}")
        events = []
        for pod in stuck.pods_to_ask_about(pods)[:1]:
            events += self.kube.warning_events(self.owner.namespace, "Pod", pod)
        return dataclasses.replace(state, stuck=stuck.diagnose(pods, events) or stuck.replica_failure(found))

    def in_the_way(self, wanted: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], InTheWay]:
        out = {}
        for obj in wanted:
            way = in_the_way(obj, self.read(obj["kind"], obj["metadata"]["name"]), self.owner.uid, self.owner.name)
            if way:
                out[(way.kind, way.name)] = way
        return out

    def carry_out(self, plan: pipeline.Plan) -> list[tuple[str, str, str]]:
        """Delete, apply and create what the plan says; returns events for names found taken."""
        events = []
        for kind, name in plan.delete:
            self.delete(kind, name)
        for obj in plan.handover:
            self.kube.apply(obj, c.HANDOVER_MANAGER)
        for obj in plan.apply:
            self.kube.apply(obj)
        for obj in plan.create_only:
            try:
                self.kube.create_or_adopt(obj)
            except ConflictError as e:   # taken since this pass read it; the next pass reports it
                events.append(("Warning", "NameConflict", str(e)))
        return events

    def delete(self, kind: str, name: str) -> None:
        found = self.read(kind, name)
        if found is None:
            return
        if verdict(found, self.owner.uid, self.owner.name) == FOREIGN:
            log.info("leaving %s %s/%s alone: not made by modelops for %s", kind, self.owner.namespace, name,
                     self.owner.name)
            return
        self.kube.delete(kind, self.owner.namespace, name, uid=found["metadata"].get("uid"))
