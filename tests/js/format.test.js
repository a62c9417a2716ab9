// Number and text formatting (src/advtopo/app/static/format.js).
const test = require("node:test");
const assert = require("node:assert/strict");
const { fmt, esc, statCell, shortNumber } = require("../../src/advtopo/app/static/format.js");

test("fmt rounds to the given decimals (2 by default)", () => {
  assert.equal(fmt(2 / 3), "0.67");
  assert.equal(fmt(0), "0.00");
  assert.equal(fmt(-0.5, 1), "-0.5");
  assert.equal(fmt(-12.345, 0), "-12");
  assert.equal(fmt(5, 0), "5");
  assert.equal(fmt(0.1234, 3), "0.123");
  assert.equal(fmt(1e6), "1000000.00");
});

test("fmt shows a dash for missing values and coerces numeric strings", () => {
  assert.equal(fmt(null), "–");
  assert.equal(fmt(undefined), "–");
  assert.equal(fmt(NaN), "–");
  assert.equal(fmt("0.25"), "0.25");
  assert.equal(fmt(Infinity), "Infinity");
});

test("esc escapes the five HTML specials and stringifies anything", () => {
  assert.equal(esc(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  assert.equal(esc("plain ε=0.1 · text"), "plain ε=0.1 · text");
  assert.equal(esc(""), "");
  assert.equal(esc(5), "5");
  assert.equal(esc(null), "null");
  assert.equal(esc("&amp;"), "&amp;amp;"); // not idempotent: escape once
});

test("statCell: non-integers with 3 decimals, integers and text as they are, missing as a dash", () => {
  assert.equal(statCell(0.12345), "0.123");
  assert.equal(statCell(-1.5), "-1.500");
  assert.equal(statCell(3), "3");
  assert.equal(statCell(0), "0");
  assert.equal(statCell("pgd"), "pgd");
  assert.equal(statCell("<b>"), "&lt;b&gt;");
  assert.equal(statCell(null), "–");
  assert.equal(statCell(undefined), "–");
  assert.equal(statCell(NaN), "–");
});

test("shortNumber keeps 4 significant digits without trailing zeros", () => {
  assert.equal(shortNumber(0.123456), "0.1235");
  assert.equal(shortNumber(12345.6), "12350");
  assert.equal(shortNumber(2.5), "2.5");
  assert.equal(shortNumber(0), "0");
  assert.equal(shortNumber(-0.000123456), "-0.0001235");
  assert.equal(shortNumber("1.00001"), "1");
});
