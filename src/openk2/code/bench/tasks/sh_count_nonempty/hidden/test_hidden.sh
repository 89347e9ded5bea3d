set -eu
printf 'a\n\nb\n\n' > in.txt
[ "$(bash count.sh in.txt)" = 2 ] || { echo 'expected 2'; exit 1; }
