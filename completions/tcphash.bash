# bash completion for tcphash(1)                           -*- shell-script -*-
# Installed as share/bash-completion/completions/tcphash. Uses bash-completion's
# helpers when they are loaded and plain compgen otherwise.

# Pool files: *.pool (and directories) when the directory has any, else every file.
_tcphash_pool()
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

# Backend names of the pool given by -f on the line, else $TCPDIST_POOL: the
# NAME of every [backend NAME] header (names are 1-63 of A-Z a-z 0-9 . _ -).
# Reads words and cword of _tcphash.
_tcphash_backends()
{
    local i w pool=$TCPDIST_POOL
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
        --) break ;;
        -f) ((i + 1 < cword)) && pool=${words[i + 1]} ;;
        -f?*) pool=${w#-f} ;;
        esac
    done
    # Undo the simplest quoting and a leading ~; anything fancier is not a pool path.
    pool=${pool#[\"\']}
    pool=${pool%[\"\']}
    pool=${pool/#\~/$HOME}
    [[ -n $pool && -f $pool && -r $pool ]] || return
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(sed -n 's/^[[:blank:]]*\[[[:blank:]]*backend[[:blank:]][[:blank:]]*\([A-Za-z0-9._-][A-Za-z0-9._-]*\)[[:blank:]]*\].*$/\1/p' -- "$pool" 2>/dev/null)" -- "$cur"))
}

_tcphash()
{
    local cur prev words cword split=false i diff=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        COMPREPLY=()
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        # bash splits --down=NAME into --down, = and NAME.
        if [[ $cur == = ]]; then
            cur=
            split=true
        elif [[ $prev == = ]] && ((cword >= 2)); then
            prev=${COMP_WORDS[cword - 2]}
            split=true
        elif [[ $cur == --*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
            split=true
        fi
    fi

    case $prev in
    -f)
        _tcphash_pool
        return
        ;;
    -n)
        COMPREPLY=($(compgen -W "$(seq 1 32)" -- "$cur"))
        compopt -o nosort 2>/dev/null
        return
        ;;
    --down)
        _tcphash_backends
        return
        ;;
    --zone | -h | --help | --version)
        return
        ;;
    esac
    $split && return

    for ((i = 1; i < cword; i++)); do
        [[ ${words[i]} == --diff ]] && diff=true
    done
    if [[ $cur == -* ]]; then
        if $diff; then
            COMPREPLY=($(compgen -W '--json --without --set' -- "$cur"))
        else
            COMPREPLY=($(compgen -W '-f -n -h --down --diff --stats --zone --json --help
                --version' -- "$cur"))
        fi
        return
    fi
    # After --diff the operands are OLD and NEW pool files; else they are
    # client addresses, which are free text.
    $diff && _tcphash_pool
} &&
    complete -F _tcphash tcphash

# ex: filetype=sh
