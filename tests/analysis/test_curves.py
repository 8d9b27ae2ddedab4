"""The recovery curves' fault label: the faults in order, a soak's by count per op."""


def test_a_soaks_many_faults_are_named_by_count_per_op():
    from harness.analysis.curves import _fault_label

    assert _fault_label(["kill api-server-0"]) == "kill api-server-0"
    soak = ["pause worker-0", "resume worker-0", "freeze api-server-1", "thaw api-server-1",
            "kill scheduler-1", "kill scheduler-0", "stop_service redis",
            "start_service redis"]  # fmt: skip
    assert _fault_label(soak) == "5 faults: 2 kill, 1 pause, 1 freeze, 1 stop_service"
