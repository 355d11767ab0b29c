"""`python -m cdcodec.bench` runs the same command as `cdcodec bench`."""

from ..codec.allocator import keep_freed_memory
from .command import bench_command

if __name__ == "__main__":
    keep_freed_memory()  # as the `cdcodec` group does before every command
    bench_command(prog_name="cdcodec bench")
