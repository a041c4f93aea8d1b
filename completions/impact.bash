# bash completion for impact (commands and subcommands; flags and dynamic values arrive later)
_impact() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[1]:-}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "profile login logout token auth passport service-info doctor version --help --version --json --format --profile -v --debug --no-color --config --cacert" -- "$cur"))
  elif [ "$COMP_CWORD" -eq 2 ] && [ "$prev" = profile ]; then
    COMPREPLY=($(compgen -W "add list show use remove" -- "$cur"))
  elif [ "$COMP_CWORD" -eq 2 ] && [ "$prev" = auth ]; then
    COMPREPLY=($(compgen -W "status" -- "$cur"))
  elif [ "$COMP_CWORD" -eq 2 ] && [ "$prev" = service-info ]; then
    COMPREPLY=($(compgen -W "wes drs beacon storage" -- "$cur"))
  fi
}
complete -F _impact impact
