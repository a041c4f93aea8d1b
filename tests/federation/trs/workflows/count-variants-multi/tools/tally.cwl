#!/usr/bin/env cwltool
# Step of main.cwl: counts the records of a VCF (plain or gzip) per chromosome -> counts.tsv.
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments:
  - >-
    gzip -cdf "$0" | awk -F '\t' '!/^#/ && NF > 0 { n[$1]++ } END { for (c in n) print c "\t" n[c] }'
    | sort -k1,1V > counts.tsv
  - $(inputs.vcf.path)
inputs:
  vcf: File
outputs:
  counts:
    type: File
    outputBinding: { glob: counts.tsv }
