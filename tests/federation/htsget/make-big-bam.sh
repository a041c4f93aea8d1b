#!/usr/bin/env bash
# Make a large, sorted, indexed BAM from the htsget-rs test BAM, for benchmarks of htsget clients:
#
#   tests/federation/htsget/make-big-bam.sh OUT_DIR [COPIES (default 220: about 500 MB)] [NAME (default big_NA12878)]
#
# The reads on 11 and 20 are repeated COPIES times, copy k shifted by k * 120 kb (mate positions too, read
# names suffixed _k), so the file stays coordinate-sorted and its index has real bins all along; the
# unplaced unmapped reads come once at the end. Writes OUT_DIR/NAME.bam and NAME.bam.bai; serve it with
#   node tests/federation/htsget/server.js --port P --data OUT_DIR      (or FED_HTSGET_DATA=OUT_DIR up ...)
# as id NAME. Needs samtools (Debian's 1.16 is enough). Takes a few minutes for 220 copies.
set -euo pipefail
OUT="${1:?usage: make-big-bam.sh OUT_DIR [COPIES] [NAME]}"
COPIES="${2:-220}"
NAME="${3:-big_NA12878}"
[[ "$COPIES" =~ ^[0-9]+$ ]] && [ "$COPIES" -ge 1 ] && [ "$COPIES" -le 1000 ] || { echo "make-big-bam: COPIES must be 1..1000" >&2; exit 2; }
[[ "$NAME" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-big-bam: NAME: letters, digits, . _ - only" >&2; exit 2; }
command -v samtools >/dev/null || { echo "make-big-bam: samtools is not installed" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/../../data/crypt4gh/htsget-rs/plain/htsnexus_test_NA12878.bam"
IDX="$HERE/../../data/htsget/htsnexus_test_NA12878.bam.bai"
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export REF_PATH=/nonexistent REF_CACHE=/nonexistent
samtools view -H "$SRC" > "$TMP/header.sam"
for ref in 11 20 '*'; do samtools view -X "$SRC" "$IDX" "$ref" > "$TMP/reads.$([ "$ref" = '*' ] && echo unplaced || echo "$ref").sam"; done
{
  cat "$TMP/header.sam"
  for ref in 11 20; do
    awk -v copies="$COPIES" -v shift=120000 'BEGIN { FS = OFS = "\t" }
      { line[NR] = $0 }
      END {
        for (k = 0; k < copies; k++) for (i = 1; i <= NR; i++) {
          n = split(line[i], f, "\t")
          f[1] = f[1] "_" k
          if (f[4] > 0) f[4] += k * shift
          if ((f[7] == "=" || f[7] == f[3]) && f[8] > 0) f[8] += k * shift
          out = f[1]; for (j = 2; j <= n; j++) out = out OFS f[j]
          print out
        }
      }' "$TMP/reads.$ref.sam"
  done
  cat "$TMP/reads.unplaced.sam"
} | samtools view --no-PG -b -o "$OUT/$NAME.bam" -
samtools index "$OUT/$NAME.bam"
echo "$OUT/$NAME.bam: $(stat -c %s "$OUT/$NAME.bam") bytes, $(samtools view -c "$OUT/$NAME.bam") reads"
