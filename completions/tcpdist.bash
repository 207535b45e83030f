# bash completion for tcpdist(1)                           -*- shell-script -*-
# Installed as share/bash-completion/completions/tcpdist. Uses bash-completion's
# helpers when they are loaded and plain compgen otherwise.

# Pool files: *.pool (and directories) when the directory has any, else every file.
_tcpdist_pool()
{
    local f
    COMPREPLY=()
    if declare -F _filedir >/dev/null; then
        _filedir pool
        for f in "${COMPREPLY[@]}"; do
            [[ -d ${f/#\~/$HOME} ]] || return 0
        done
        COMPREPLY=()
        _filedir
        return 0
    fi
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -X '!*.pool' -- "$cur"))
    if ((${#COMPREPLY[@]} == 0)); then
        COMPREPLY=($(compgen -f -- "$cur"))
    else
        COMPREPLY+=($(compgen -d -- "$cur"))
    fi
}

# Thread counts: 1 up to the number of processors, at most 64.
_tcpdist_threads()
{
    local n i words=
    n=$(nproc 2>/dev/null) || n=4
    ((n > 64)) && n=64
    for ((i = 1; i <= n; i++)); do
        words+="$i "
    done
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

_tcpdist()
{
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
            split=true
        fi
    fi

    case $prev in
    -f | -[nv]f | -[nv][nv]f)
        _tcpdist_pool
        return
        ;;
    -j | -[nv]j | -[nv][nv]j)
        _tcpdist_threads
        return
        ;;
    --log-format)
        COMPREPLY=($(compgen -W 'text logfmt json' -- "$cur"))
        return
        ;;
    --control)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    -l | --metrics | --drain-timeout | --backend | --client | --limit)
        # ADDR and DURATION are free text
        return
        ;;
    -h | --help | --version)
        return
        ;;
    esac
    $split && return

    case ${words[1]:-} in
    status)
        [[ $cur == -* ]] && COMPREPLY=($(compgen -W '-f --control --json --help' -- "$cur"))
        return
        ;;
    sessions)
        [[ $cur == -* ]] && COMPREPLY=($(compgen -W '-f --control --backend --limit --json
            --help' -- "$cur"))
        return
        ;;
    kill)
        [[ $cur == -* ]] && COMPREPLY=($(compgen -W '-f --control --backend --client
            --help' -- "$cur"))
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-n -v -j -l -f -h --metrics --control --takeover
            --log-connections --log-format --no-splice --drain-timeout --syslog --help --version' -- "$cur"))
        return
    fi
    _tcpdist_pool
    ((cword == 1)) && COMPREPLY+=($(compgen -W 'status sessions kill' -- "$cur"))
} &&
    complete -F _tcpdist tcpdist

# ex: filetype=sh
