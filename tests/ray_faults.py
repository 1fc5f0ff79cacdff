"""Faults injected into Ray's worker processes (`worker_process_setup_hook`), which import this module."""

import os


def die_on_second_shard() -> None:
    """Make an annotator actor's process end, as the kernel's out-of-memory killer would end it,
    whenever it is given the second shard of an input (`...-000001`); other shards go through."""
    from spacy_bioner.annotate import ray_engine

    annotate_shard = ray_engine.annotate_shard

    def dying(annotator, shard, *args, **kwargs):  # type: ignore[no-untyped-def]
        if shard.endswith("-000001"):
            with open(os.environ["DYING_SHARD_LOG"], "a") as log:
                log.write(f"{shard}\n")
            os._exit(1)
        return annotate_shard(annotator, shard, *args, **kwargs)

    ray_engine.annotate_shard = dying


def log_shard_pids(seconds: float = 0.3) -> None:
    """Make an annotator actor write "<shard> <its pid>" for each shard it annotates, each taking
    at least `seconds`, so that a pool of several actors has work for each."""
    import time

    from spacy_bioner.annotate import ray_engine

    annotate_shard = ray_engine.annotate_shard

    def logged(annotator, shard, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        with open(os.environ["SHARD_PID_LOG"], "a") as log:
            log.write(f"{shard} {os.getpid()}\n")
        return annotate_shard(annotator, shard, *args, **kwargs)

    ray_engine.annotate_shard = logged


def no_bfloat16_arithmetic() -> None:
    """Make an actor's process see a CPU without bfloat16 arithmetic (neither avx512_bf16 nor amx_bf16),
    as a cluster's workers may have where its driver has it."""
    from spacy_bioner.layers import encoder_shim

    encoder_shim._cpu_has_bfloat16 = lambda: False
