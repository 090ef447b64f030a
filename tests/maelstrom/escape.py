#!/usr/bin/env python3
"""A Maelstrom node that leaves a daemon behind: before serving (as
local.py), it forks, calls setsid and forks again, and that grandchild
sleeps in a session of its own. Killing the member's process group does
not reach it; faultline must still kill it at the end of the run."""
import os
import sys
import time

mark = os.environ.get("ESCAPE_MARK", "3607")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", mark])
    os._exit(0)
os.wait()
here = os.path.dirname(os.path.abspath(__file__))
os.execvp(sys.executable, [sys.executable, os.path.join(here, "local.py")])
