#!/usr/bin/env bash
set -eu
wc -l < "$1" | tr -d ' '
