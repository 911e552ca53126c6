// Package repocheck holds repository-wide checks that run with the test
// suite: the repository stands on its own, so no file may refer to a file
// outside it, and every relative link in the documentation must resolve.
// It has no code of its own; the checks are its tests.
package repocheck
