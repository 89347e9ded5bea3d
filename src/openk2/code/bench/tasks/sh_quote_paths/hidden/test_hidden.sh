set -eu
echo hi > 'my file.txt'
bash backup.sh 'my file.txt' 'back up'
[ "$(cat 'back up/my file.txt')" = hi ] || exit 1
