"""Tests of vaultd: the development vault over HTTP and the fault proxy."""
