#!/usr/bin/env python3
"""A node that never answers init."""
import sys
sys.stdin.read()
