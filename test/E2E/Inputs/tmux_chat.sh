#!/usr/bin/env bash
# Drives `MODEL --chat` in a tmux terminal for two turns and prints the pane:
#   tmux_chat.sh MODEL WORKDIR "first message" "second message"
# Waits for each prompt ("> ") to come back before typing; gives up after
# 60 s of no progress (a hang fails the test, it is not a timing check).
set -u
model=$1 dir=$2 first=$3 second=$4
sock="$dir/tmux.sock"
tmux -S "$sock" kill-server 2>/dev/null
tmux -S "$sock" new-session -d -x 200 -y 50 "$model --chat -n 8 --temp 0; sleep 30"
wait_prompts() { # until the pane shows $1 prompts
  for _ in $(seq 1 300); do
    n=$(tmux -S "$sock" capture-pane -p | grep -c '^>')
    [ "$n" -ge "$1" ] && return 0
    sleep 0.2
  done
  echo "tmux_chat.sh: no prompt number $1" >&2
  tmux -S "$sock" capture-pane -p >&2
  tmux -S "$sock" kill-server
  exit 1
}
wait_prompts 1
tmux -S "$sock" send-keys "$first" Enter
wait_prompts 2
tmux -S "$sock" send-keys "$second" Enter
wait_prompts 3
tmux -S "$sock" capture-pane -p | sed -e 's/[[:space:]]*$//' | grep -v '^$'
tmux -S "$sock" kill-server
