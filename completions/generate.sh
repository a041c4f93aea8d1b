#!/bin/sh
# Regenerates the completion scripts from the command tree of a built impact:
#   completions/generate.sh build/cli/impact
# tests/cli/completion.test.js fails when the committed scripts are out of step with the binary.
set -eu
bin=${1:?usage: completions/generate.sh PATH/TO/impact}
dir=$(dirname "$0")
"$bin" completion bash > "$dir/impact.bash"
"$bin" completion zsh > "$dir/_impact"
"$bin" completion fish > "$dir/impact.fish"
