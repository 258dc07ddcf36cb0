"""Every pushpop scenario for Locust's own command line and web UI.

    locust -f load_tests/locustfile.py --class-picker --host http://127.0.0.1:8000

pick a user class (e.g. ``MixedWorkloadUser``) and optionally a shape. Users are
closed-loop by default, as Locust users usually are; ``--pushpop-model open`` turns
them into open-model arrival generators (each makes ``rate_per_user`` arrivals/s, or
shares a shape's rate). Add ``--pushpop-out results/webui`` to keep the microsecond
histograms, depth samples and the ledger check, and ``--stop-timeout 15`` so that
requests in flight finish when you press stop.

Without ``--class-picker`` Locust would run *every* class below with the first shape,
so use the picker (or ``pushpop-bench run S3a``, which runs one variant headless with
the open model and writes a report).
"""

from load_tests.scenarios.s1_push_only import (  # noqa: F401
    S1aSingleQueuePush,
    S1bTenQueuePush,
    S1cFivePriorityPush,
)
from load_tests.scenarios.s2_pop_only import S2aPopDepth1, S2bPopDepth10, S2cPopDepth100  # noqa: F401
from load_tests.scenarios.s3_mixed import (  # noqa: F401
    BalancedLargeItemsUser,
    ConsumerHeavyUser,
    MixedWorkloadUser,
    MultiPriorityMixedUser,
    ProducerHeavyUser,
)
from load_tests.scenarios.s4_concurrent import (  # noqa: F401
    S4aOneQueue,
    S4bTenQueues,
    S4cFiftyQueues,
    S4dHundredQueues,
)
from load_tests.scenarios.s5_queue_depth import (  # noqa: F401
    S5aEmptyQueue,
    S5bThousandItems,
    S5cTenThousandItems,
    S5dHundredThousandItems,
    S5eMillionItems,
)
from load_tests.scenarios.s6_burst import BurstUser  # noqa: F401
from load_tests.scenarios.s7_failure import (  # noqa: F401
    S7aInvalidItems,
    S7bNegativePriorities,
    S7cDepthTooLarge,
    S7dPostgresRestart,
    S7eSidecarRestart,
    S7fLockExpiry,
)
from load_tests.shapes import (  # noqa: F401
    ConstantRateShape,
    SineBurstShape,
    SpikeBurstShape,
    SquareBurstShape,
    StepRampShape,
)
