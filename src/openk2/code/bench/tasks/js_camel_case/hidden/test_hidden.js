const assert = require('assert');
const { toCamel } = require('./case');
assert.strictEqual(toCamel('foo_bar_baz'), 'fooBarBaz');
assert.strictEqual(toCamel('x'), 'x');
