#!/usr/bin/env cwltool
# Step of main.cwl: the sum of the counts -> total.txt.
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [awk, '{ s += $2 } END { print s + 0 }']
stdout: total.txt
inputs:
  counts:
    type: File
    inputBinding: { position: 1 }
outputs:
  total:
    type: stdout
