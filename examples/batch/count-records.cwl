#!/usr/bin/env cwltool
# One sample's VCF -> summary.tsv: sample <TAB> records <TAB> distinct chromosomes. Plain sh/awk, no container.
cwlVersion: v1.2
class: CommandLineTool
$namespaces:
  fed: https://github.com/impact-cli/impact/tests/federation#
# The local federation's result crawler copies only the outputs named here to the results bucket.
fed:non_sensitive_outputs: [summary]
label: count the records of one sample's VCF
baseCommand: [sh, -c]
arguments:
  - >-
    gzip -cdf "$1" | awk -F '\t' -v s="$0" '!/^#/ && NF > 0 { n++; c[$1] = 1 }
    END { k = 0; for (x in c) k++; print s "\t" n + 0 "\t" k }' > summary.tsv
  - $(inputs.sample)
  - $(inputs.vcf.path)
inputs:
  sample: string
  vcf: File
outputs:
  summary:
    type: File
    outputBinding: { glob: summary.tsv }
