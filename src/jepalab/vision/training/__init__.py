"""Pretraining: building encoder and method (:mod:`.build`), the loop
(:mod:`.loop`) and its step with the views it draws (:mod:`.step`), schedules, precision, DDP, checkpoints, run
folders (:mod:`.run_dir`) and their lock (:mod:`.run_lock`), FLOPs and the run's curves."""
