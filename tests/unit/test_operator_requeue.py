"""At most one pending requeue per resource, however many passes fail meanwhile."""
from modelops_operator.requeue import MAX_S, Requeues, backoff


class FakeTimer:
    def __init__(self, delay, fn, made):
        self.delay, self.fn, self.cancelled, self.started = delay, fn, False, False
        made.append(self)

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True


def requeues(runs, now=lambda: 0.0):
    made = []
    r = Requeues(lambda ns, name: runs.append((ns, name)), timer=lambda d, fn: FakeTimer(d, fn, made), clock=now)
    return r, made


def live(made):
    return [t for t in made if t.started and not t.cancelled]


def test_many_failed_passes_during_an_outage_leave_one_pending_retry():
    runs = []
    r, made = requeues(runs)
    for _ in range(50):                      # fifty watch events, each failing its pass
        r.failed(("ns", "a"))
    assert len(live(made)) == 1 and r.pending() == 1
    assert live(made)[0].delay == backoff(1)
    live(made)[0].fn()
    assert runs == [("ns", "a")] and r.pending() == 0


def test_resources_retry_independently_and_an_earlier_request_replaces_a_later_one():
    runs = []
    r, made = requeues(runs)
    r.after(("ns", "a"), 60)
    r.after(("ns", "b"), 60)
    r.after(("ns", "a"), 5)
    assert sorted(t.delay for t in live(made)) == [5, 60]
    assert made[0].cancelled


def test_backoff_grows_and_is_capped_and_success_resets_it():
    assert [backoff(n) for n in (1, 2, 3)] == [2, 4, 8] and backoff(30) == MAX_S
    runs = []
    r, made = requeues(runs)
    for _ in range(3):
        r.failed(("ns", "a"))
        made[-1].fn()
    assert [t.delay for t in made] == [2, 4, 8]
    r.succeeded(("ns", "a"))
    assert r.failed(("ns", "a")) == 1


def test_a_deleted_resource_leaves_no_timer_behind():
    r, made = requeues([])
    r.failed(("ns", "a"))
    r.forget(("ns", "a"))
    assert live(made) == [] and r.pending() == 0
