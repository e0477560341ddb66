"""What a run cost, as the results tables show it (pretraining and transfer runs)."""
import torch


def peak_memory_mb() -> float:
    """Peak memory of this process: the accelerator's allocator when there is
    one, else the resident set (Linux reports KB)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2 ** 20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost_record(seconds: float, world_size: int, images: int) -> dict:
    """Device-hours (world size x wall time), images/s and peak memory of a
    run, as the results tables show them."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU process'
    return dict(device=device, unit='GPU-hours' if torch.cuda.is_available() else 'CPU process-hours',
                device_hours=world_size * seconds / 3600, wall_seconds=seconds, world_size=world_size,
                images_per_second=images / seconds if seconds else None, peak_memory_mb=peak_memory_mb())
