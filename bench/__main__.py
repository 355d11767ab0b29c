"""`python -m cdcodec.bench` runs the same command as `cdcodec bench`."""

from .command import bench_command

if __name__ == "__main__":
    bench_command(prog_name="cdcodec bench")
