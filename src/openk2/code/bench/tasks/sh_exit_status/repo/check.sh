#!/usr/bin/env bash
if [ ! -e "$1" ]; then
  echo missing
fi
