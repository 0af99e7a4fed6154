"""Which partitions a worker prefers: ``--partitions``, or its share as one of
``--replicas`` (``--replica auto``: a Kubernetes StatefulSet pod's ordinal)."""

from __future__ import annotations

import pytest

from openticket.entrypoints.cli import main
from openticket.entrypoints.worker import parse_partitions, replica_number, replica_partitions


def test_partitions_are_ranges_and_numbers_below_the_count() -> None:
    assert parse_partitions("0-3,6", 8) == [0, 1, 2, 3, 6]
    assert parse_partitions("", 8) == []
    with pytest.raises(ValueError, match="not within 0-7"):
        parse_partitions("6-8", 8)


@pytest.mark.parametrize(
    ("replicas", "shares"),
    [
        (1, [range(16)]),
        (2, [range(8), range(8, 16)]),
        (3, [range(5), range(5, 10), range(10, 16)]),
        (4, [range(0, 4), range(4, 8), range(8, 12), range(12, 16)]),
    ],
)
def test_replicas_split_sixteen_partitions_into_contiguous_ranges_in_ordinal_order(
    replicas: int, shares: list[range]
) -> None:
    assert [replica_partitions(n, replicas, 16) for n in range(replicas)] == [
        list(share) for share in shares
    ]


@pytest.mark.parametrize("count", [1, 4, 7, 16, 64])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5, 8, 20])
def test_every_partition_is_preferred_by_exactly_one_replica_and_shares_differ_by_one_at_most(
    count: int, replicas: int
) -> None:
    shares = [replica_partitions(n, replicas, count) for n in range(replicas)]
    assert sorted(p for share in shares for p in share) == list(range(count))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    for share in filter(None, shares):
        assert share == list(range(share[0], share[-1] + 1))


def test_with_more_replicas_than_partitions_some_prefer_none() -> None:
    assert [replica_partitions(n, 4, 2) for n in range(4)] == [[], [0], [], [1]]


def test_a_replica_outside_the_replicas_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match=r"replica 2 is not within 0-1 .*raise --replicas"):
        replica_partitions(2, 2, 16)


@pytest.mark.parametrize(
    ("hostname", "ordinal"),
    [("openticket-worker-0", 0), ("openticket-worker-12", 12), ("w-3", 3)],
)
def test_auto_is_the_number_a_statefulset_pods_host_name_ends_in(
    hostname: str, ordinal: int
) -> None:
    assert replica_number("auto", hostname) == ordinal


def test_auto_on_a_host_name_without_an_ordinal_says_to_give_the_number() -> None:
    with pytest.raises(ValueError, match="does not end in -<number>"):
        replica_number("auto", "worker-host")


def test_a_replica_is_a_number_or_auto() -> None:
    assert replica_number("3", "any-host-9") == 3
    for wrong in ("-1", "one", "", "1.5", "²"):
        with pytest.raises(ValueError, match="use auto or a number"):
            replica_number(wrong, "any-host-9")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--replica", "2", "--replicas", "2"], "replica 2 is not within 0-1"),
        (["--replica", "1"], "--replica and --replicas go together"),
        (["--replicas", "2"], "--replica and --replicas go together"),
        (
            ["--partitions", "0-7", "--replica", "0", "--replicas", "2"],
            "either --partitions or --replica/--replicas",
        ),
        (["--replica", "first", "--replicas", "2"], "use auto or a number"),
    ],
)
def test_the_worker_command_refuses_replica_options_that_do_not_fit_in_one_line(
    arguments: list[str],
    said: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENTICKET_PARTITIONS", "16")
    assert main(["worker", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openticket worker: ")
    assert said in err
    assert len(err.strip().splitlines()) == 1


def test_replicas_must_be_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["worker", "--replica", "0", "--replicas", "0"])
    assert exited.value.code == 2
    assert "use a number of 1 or more" in capsys.readouterr().err
