#!/usr/bin/env python3
"""A node that prints something that is not a Maelstrom message."""
import sys
sys.stdin.readline()
print("hello from a node that forgot the protocol", flush=True)
sys.stdin.read()
