# bash completion for tcppeer(1)                           -*- shell-script -*-
# Installed as share/bash-completion/completions/tcppeer. Uses bash-completion's
# helpers when they are loaded and plain compgen otherwise.

_tcppeer()
{
    local cur prev words cword i sub=
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        COMPREPLY=()
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi

    case $prev in
    --pool)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -X '!*.pool' -- "$cur") $(compgen -d -- "$cur"))
        return
        ;;
    --control | --keyring | --snapshot)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    -n | -b | --allow | -a | -j | -t | --service-tag | --zone-tag | --probe-interval | --probe-timeout | \
        --gossip-interval | --gossip-nodes | --indirect-checks | --retransmit-mult | \
        --suspicion-mult | --suspicion-max-mult | --pushpull-interval | --gossip-to-dead | \
        --tcp-timeout | --leave-timeout | --pool-delay | --reconnect-interval | \
        --reconnect-timeout | --tombstone-timeout | -h | --help | --version)
        return
        ;;
    esac

    [[ $cword -gt 1 && ${words[1]} =~ ^(members|event|force-leave|rtt)$ ]] && sub=${words[1]}
    if [[ $sub == members ]]; then
        COMPREPLY=($(compgen -W '--control --json' -- "$cur"))
        return
    fi
    if [[ $sub == event || $sub == force-leave || $sub == rtt ]]; then
        [[ $cur == -* ]] && COMPREPLY=($(compgen -W '--control' -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-n -b -a -j -t -v -h --pool --service-tag --zone-tag --control
            --keyring --allow --help --version --probe-interval --probe-timeout --gossip-interval
            --gossip-nodes --indirect-checks --retransmit-mult --suspicion-mult
            --suspicion-max-mult --pushpull-interval --gossip-to-dead --tcp-timeout
            --leave-timeout --pool-delay --reconnect-interval --reconnect-timeout
            --tombstone-timeout --snapshot' -- "$cur"))
    elif ((cword == 1)); then
        COMPREPLY=($(compgen -W 'members event force-leave rtt' -- "$cur"))
    fi
} &&
    complete -F _tcppeer tcppeer

# ex: filetype=sh
