"""Same as `siamtrack demo` (for a source checkout without the console script): python tools/demo.py [INPUT] [--output demo.mp4]"""
import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
