#!/usr/bin/env cwltool
# Counts the variant records of a VCF (plain or gzip) per chromosome.
# Input: a File, either an attachment (relative location) or an http(s) URL (e.g. a DRS access URL).
# Outputs: counts.tsv (chromosome <TAB> count, version-sorted) and total.txt (sum).
# Needs only sh, gzip, awk and sort on the host (runs with cwltool --no-container).
cwlVersion: v1.2
class: Workflow
$namespaces:
  fed: https://github.com/impact-cli/impact/tests/federation#
# Outputs the WES result crawler may copy to the results bucket (see wes/README.md).
fed:non_sensitive_outputs: [counts, total]
label: count variants per chromosome
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
    run:
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
  sum:
    in: { counts: tally/counts }
    out: [total]
    run:
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
