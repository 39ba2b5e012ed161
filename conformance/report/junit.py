"""JUnit XML of a conformance run, one test case per check, for CI.

Why one module for every adapter: CI reads every target's report the same
way; an adapter says only which figures it has and how it shows an operation.
"""

from __future__ import annotations

import os

from kubemc.conformance.report.outputs import create_exclusive


def write_checks_junit(path: str | os.PathLike, target: str, props, checks, window) -> None:
    """The JUnit XML of a run: suite ``kubemc conform TARGET`` with
    ``props`` (name, value pairs), one test case per check; a failed one
    carries every violation, each with the lines ``window(violation)`` gives;
    an undecided one is *skipped* with its note (neither passed nor failed).

    Why one function: CI reads every target's report the same way; a target
    says only which figures it has and how it shows an operation.
    """
    from junitparser import Failure, JUnitXml, Properties, Property, Skipped, TestCase, TestSuite

    suite = TestSuite(f"kubemc conform {target}")
    properties = Properties()
    for name, value in props:
        properties.add_property(Property(name, str(value)))
    suite.append(properties)
    for c in checks:
        case = TestCase(c.name, classname=f"conform.{target}", time=round(c.seconds, 4))
        if not c.ok:
            first = c.violations[0]
            fail = Failure(first.message[:500], type_=c.name)
            body = [f"property: {c.statement}", f"source: {c.source}"]
            for v in c.violations:
                body.append(f"- {v.message}")
                body.extend("    " + line for line in window(v))
            fail.text = "\n".join(body)
            case.result = [fail]
        elif getattr(c, "undecided", False):
            case.result = [Skipped(c.note[:500])]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    write_junit_xml(xml, path)


def write_junit_xml(xml, path: str | os.PathLike) -> None:
    """A junitparser document into a new file (never over an existing one)."""
    def write(fh):
        fh.write(xml.tostring())
    create_exclusive(path, write, binary=True)
