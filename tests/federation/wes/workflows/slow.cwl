#!/usr/bin/env cwltool
# Sleeps for `seconds` (default 60) and then writes done.txt. For cancel tests.
cwlVersion: v1.2
class: CommandLineTool
label: sleeps
baseCommand: [sh, -c, 'sleep "$0" && echo done > done.txt']
inputs:
  seconds:
    type: int
    default: 60
    inputBinding: { position: 1 }
outputs:
  done:
    type: File
    outputBinding: { glob: done.txt }
