#!/usr/bin/env bash
# An example handler: reads a job like {"fail": true} or {"seconds": 5}.
payload=$(cat)
case $payload in
  *'"fail": true'*) echo "cannot handle $payload" >&2; exit 1 ;;
  *'"seconds":'*) sleep "$(sed 's/.*"seconds": *\([0-9]*\).*/\1/' <<<"$payload")" ;;
esac
