#!/usr/bin/env cwltool
# A tool that always fails: writes a message to stderr and exits with status 3.
# A run of it ends in EXECUTOR_ERROR.
cwlVersion: v1.2
class: CommandLineTool
label: always fails
baseCommand: [sh, -c, 'echo "fails.cwl: failing on purpose" >&2; exit 3']
inputs: []
outputs: []
