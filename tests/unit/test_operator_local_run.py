"""`modelops run` on this machine's devices."""
from modelops_contracts.jobconfig import TrainingSpec
from modelops_operator.local_run import on_this_machine


def test_gpus_this_machine_lacks_become_cpu_training_with_the_same_strategy_in_float32():
    """A GPU example failed locally with GPUUnavailable; here it trains on the CPU (and says so)."""
    asked = TrainingSpec(strategy="Mirrored", gpus_per_worker=2, precision="mixed_float16", seed=7, attempt=2)
    assert on_this_machine(asked, 0) == TrainingSpec(strategy="Mirrored", gpus_per_worker=0, precision="float32",
                                                     seed=7, attempt=2)
    assert on_this_machine(asked, 1).gpus_per_worker == 0
    assert on_this_machine(asked, 2) is asked
    cpu = TrainingSpec(strategy="OneDevice")
    assert on_this_machine(cpu, 0) is cpu
