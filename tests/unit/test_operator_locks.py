"""The per-resource locks of the reconciler: one pass at a time per resource, and nothing kept afterwards."""
import threading
import time

from modelops_operator import builders as b
from modelops_operator.metrics import Metrics
from modelops_operator.reconciler import Reconciler


def test_the_lock_map_holds_only_resources_being_reconciled_now():
    """Finding 12 of issue 10: nothing pruned the lock map, which grew by one lock per resource ever seen."""
    reconciler = Reconciler(kube=None, images=b.Images(), metrics=Metrics())
    inside, release = threading.Event(), threading.Event()

    def hold(key):
        with reconciler._locked(key):
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold, args=(("ml", "a"),))
    holder.start()
    assert inside.wait(5)
    waiter = threading.Thread(target=hold, args=(("ml", "a"),))   # a second pass of the same resource waits
    waiter.start()
    deadline = time.monotonic() + 5
    while reconciler._locks[("ml", "a")][1] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(100):    # many resources come and go while one is held
        with reconciler._locked(("ml", f"r{i}")):
            pass
    assert set(reconciler._locks) == {("ml", "a")} and reconciler._locks[("ml", "a")][1] == 2
    release.set()
    holder.join(5), waiter.join(5)
    assert reconciler._locks == {}
