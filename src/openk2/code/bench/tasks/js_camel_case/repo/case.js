function toCamel(s) {
  return s.split('_').map((w, i) => i === 0 ? w : w.toUpperCase()).join('');
}
module.exports = { toCamel };
