"""Pretraining: the typed config (:mod:`.pretrain_config`), building encoder and method (:mod:`.build`), the loop
(:mod:`.loop`) and its step (:mod:`.step`), views (:mod:`.views`), schedules, precision, DDP, checkpoints, run
folders (:mod:`.run_dir`) and their lock (:mod:`.run_lock`), FLOPs and the run's curves."""
