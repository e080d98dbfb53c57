"""modelops-training: the training and compression stages of the modelops pipeline.

Public entry points:
- `modelops_training.train.train(config) -> StageReport`
- `modelops_training.compress.compress(config) -> StageReport`
- `modelops_training.worker_env.tf_config_from_env(env)` (the worker env contract, no TensorFlow import)
- `modelops_training.local_cluster.run_local_workers(config, workers)` (multi-worker training on 127.0.0.1)
"""
