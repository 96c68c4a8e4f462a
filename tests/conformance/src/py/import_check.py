# Run by pip.rs as `python -c <this file> TARGET MODULE` (Python 2.7 and 3.x): imports MODULE
# from pip's --target directory TARGET and prints its VALUE.
import sys
sys.path.insert(0, sys.argv[1])
m = __import__(sys.argv[2])
print(m.VALUE)
