#!/usr/bin/env cwltool
# Counts the variant records of a VCF per chromosome: the same as wes/workflows/count-variants.cwl, with
# each step in its own file below tools/ (a multi-file CWL workflow, as registries serve them).
cwlVersion: v1.2
class: Workflow
$namespaces:
  fed: https://github.com/impact-cli/impact/tests/federation#
fed:non_sensitive_outputs: [counts, total]
label: count variants per chromosome (multi-file)
inputs:
  vcf:
    type: File
    doc: VCF file (optionally gzip/bgzip compressed)
outputs:
  counts:
    type: File
    outputSource: tally/counts
  total:
    type: File
    outputSource: sum/total
steps:
  tally:
    in: { vcf: vcf }
    out: [counts]
    run: tools/tally.cwl
  sum:
    in: { counts: tally/counts }
    out: [total]
    run: tools/sum.cwl
