# All metadata lives in setup.cfg; this shim keeps `python setup.py ...` and old pips working.
from setuptools import setup

setup()
