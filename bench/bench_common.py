"""Helpers the Python benchmark scripts share (run as `python bench/X.py`,
so this directory is on sys.path)."""
import platform


def cpu_name():
    """The CPU's model name (/proc/cpuinfo), else the platform's machine."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
