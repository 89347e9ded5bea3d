#!/usr/bin/env bash
set -eu
mkdir -p $2
cp $1 $2/
