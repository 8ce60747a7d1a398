//! The registry of diagnostic codes. A code, once released, names one diagnostic forever:
//! never renumber, never reuse; retire a code by leaving its line in place.
//!
//! Ranges: E0xx syntax, E1xx names and references, E2xx expressions, E3xx triggers,
//! E4xx connections, E5xx error policies, E6xx steps, alerts and tests, Wxxx warnings.

use super::Severity;

impl Code {
    /// `W` codes are warnings, the others errors.
    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal,)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
        }
    };
}

codes! {
    InternalError = "E000",
    Syntax = "E001",
    InvalidEscape = "E002",
    DurationOverflow = "E003",
    NumberOutOfRange = "E004",
    NotUtf8 = "E005",
    TooDeep = "E006",
    DuplicateName = "E101",
    UnknownConnection = "E102",
    UnknownRoot = "E103",
    StepNotYetRun = "E104",
    UnknownFallback = "E105",
    DuplicateSetting = "E106",
    UnknownFunction = "E107",
    BadArguments = "E108",
    UnknownStep = "E109",
    DuplicateField = "E110",
    IntegrationNameClash = "E111",
    InvalidVariableName = "E112",
    HeaderWithoutRequest = "E113",
    InvalidJsonPath = "E201",
    InvalidTemplate = "E202",
    DuplicateTarget = "E203",
    TargetConflict = "E204",
    NotAPath = "E205",
    ChainedComparison = "E206",
    UnknownTemplateName = "E207",
    ListIndexTooLarge = "E208",
    FilterArguments = "E209",
    FilterArgument = "E210",
    InvalidCron = "E301",
    UnknownTimezone = "E302",
    UnknownSignaturePreset = "E303",
    WebhookPathClash = "E304",
    InvalidWebhookPath = "E305",
    SignatureOptionUnused = "E306",
    UnknownSignatureEncoding = "E307",
    PollWithoutInterval = "E308",
    SignatureWithoutHeader = "E309",
    UnknownMarkType = "E310",
    StartNotOfMarkType = "E311",
    LookbackNotOfMarkType = "E312",
    SinceNeverSent = "E313",
    DedupeRetentionOutOfBounds = "E314",
    BodyWithoutMethod = "E315",
    UnknownOverlapPolicy = "E316",
    UnknownMissedPolicy = "E317",
    MissedAllWithoutWindow = "E318",
    MissedOptionUnused = "E319",
    MadeUpOutOfRange = "E320",
    MissingBaseUrl = "E401",
    LiteralSecret = "E402",
    UnknownEncoding = "E403",
    OAuth2Field = "E404",
    UnknownOverrideField = "E405",
    ZeroLimit = "E406",
    InvalidBaseUrl = "E407",
    InvalidOverrideValue = "E408",
    BadPercentage = "E409",
    InvalidHeaderName = "E410",
    InvalidHeaderValue = "E411",
    InvalidTokenUrl = "E412",
    SecretInTemplate = "E413",
    SecretHeader = "E414",
    InvertedDelays = "E501",
    ZeroAttempts = "E502",
    UnknownRetryCondition = "E503",
    UnknownOnErrorAction = "E504",
    UnknownRetryAfterMode = "E505",
    UnknownRuleAction = "E506",
    MisplacedRuleClause = "E507",
    InvalidRuleStatus = "E508",
    RuleNeverMatches = "E509",
    RetryRuleWithoutRetry = "E510",
    UnknownPartialDataPolicy = "E511",
    UnknownRulePreset = "E512",
    GraphqlDocument = "E601",
    GraphqlOnly = "E602",
    PaginationWithoutItems = "E603",
    UnknownAlertMetric = "E604",
    UnknownAlertChannel = "E605",
    UnknownStepOutcome = "E606",
    TestWithoutEvent = "E607",
    UnknownEnvironmentConnection = "E608",
    NeedsPaginate = "E609",
    DotSegmentPath = "E610",
    MockWithoutAnswers = "E611",
    MockedTwice = "E612",
    PerPageSource = "E613",
    PerPageOfForEach = "E614",
    PageReadLater = "E615",
    PerPageNested = "E616",
    RepeatedAlert = "E617",
    NotAnEmailAddress = "E618",
    RetriedWithoutIdempotencyKey = "W001",
    PollWithoutDedupe = "W002",
    UnusedConnection = "W003",
    NoTrigger = "W004",
    BackoffNeverUsed = "W005",
    UnusedFallback = "W006",
    ConnectionWithoutAuth = "W007",
    PathLikeSegment = "W008",
    OptionalPrinted = "W009",
    WebhookWithoutSignature = "W010",
    PaginateWithoutMaxPages = "W011",
    RuleHidesFailures = "W012",
    PartialMutationAccepted = "W013",
    IncrementalWithoutDedupe = "W014",
    DedupeIgnoresMark = "W015",
    WindowShorterThanInterval = "W016",
    ScheduleInDaylightSavingChange = "W017",
    BodyMatchWithoutBody = "W020",
    PerPageUnread = "W021",
    DedupeReadsClock = "W018",
    RetryRuleOnUnsafeCall = "W022",
    RuleOnUnseenStatus = "W023",
    AlertFiresWhenIdle = "W025",
    AlertNeverFires = "W026",
}
