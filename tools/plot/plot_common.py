"""What the plotting tools share: finding matplotlib (Debian's python3 has it)."""
import os
import sys


def need_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        return
    except ImportError:
        pass
    # Debian's python3 has python3-matplotlib; another python3 first on PATH may not
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("MG_PLOT_REEXEC"):
        os.environ["MG_PLOT_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.stderr.write("%s: matplotlib is missing: install Debian's python3-matplotlib "
                     "(apt-get install python3-matplotlib, or tools/deps.sh --run as root)\n"
                     % os.path.basename(sys.argv[0]))
    sys.exit(1)
