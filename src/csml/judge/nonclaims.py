"""Which sentences of an answer are claims to check: courtesy is not a claim, a fact is.

A sentence is **not checkable** when each of its clauses is courtesy -- greeting, thanks, apology, empathy,
offer of help, the agent saying what it will do, values ("your feedback matters to us"), wish, sign-off,
question or request to the customer -- or filler ("Sure!"), and the courtesy holds no checkable content: no
digits (amounts, dates, times, phones), links, e-mails, day or month names, or policy and channel words (free,
fee, within, open, website, chat...). Questions, requests and openers ("Hi Anna,", "If you need help,") assert
nothing, so only an amount, time or date makes them checkable, or a stated fact ("Did you know ...").
A clause must start with a phrase of :data:`_FAMILIES`; its tail runs to ``. ; : ! ? -`` or a comma opening a
new clause. A clause the rule cannot explain makes the sentence checkable, so a fact wrapped in courtesy
("Sure, happy to help: your order ships on Monday") stays a claim and an unknown sentence is checked, not
dropped. Two whole-sentence checks come first: a bare reaction ("Yeah, it really is!", "That's great!") is
no claim, and a lone question with no amount, time, date or name asks and asserts nothing. Among the
clauses, a request or condition about a third party or with a consequence ("Tell the customer ...", "If the
item is lost then ...") is a procedure, so a claim, and a question naming something ("How about the Ace
Hotel?") proposes that it exists. Measured by ``benchmarks/judge_nonclaims.py`` on ``data/judge/nonclaims.jsonl``
and, with ``--sgd``, on Schema-Guided Dialogue system turns labelled by their dialogue acts.
"""

from __future__ import annotations

import re

_SUBJ = r"(?:i|we|they|who|our (?:[\w-]+ ){0,3}team)"
_BE = r"(?:'m|'re| am| are)"
_ADV = r"(?:(?:\w+ly|so|very|just|more than|really|also|always|now|then|all|well|can|do) )*"
_AUX = r"(?:could|can|would|will|do|does|did|is|are|have|has|was|were|may|shall|should)"
_VERBS = (  # what an agent offers or says it will do
    r"(?:help|assist|support|guide|look|check|investigate|locate|track|retrieve|review|gather|pull|provide"
    r"|try|take|do|see|carry on|keep|go|start|get back|be right back|be with you|make|ensure|lend|offer"
    r"|pass|follow up|be in touch|escalate|quickly|promptly)"
)
# (kind, pattern) matched at the start of a clause. "opener" tails end at any comma; "opener" and "ask"
# tails count only amounts, times and dates as content, "courtesy" tails any content.
_FAMILIES = [
    ("opener", r"(?:hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening|day)|welcome(?: back)?)\b"),
    (  # conditions and purposes: the main clause that follows says whether there is a fact
        "opener",
        r"(?:if|should you|in case|whenever|once|while|as soon as|when (?:you|i|we)|in the meantime"
        r"|meanwhile|in order to|to \w+(?=[^.;:!?]*,)|with (?:this|that|these|the) (?:\w+ )?(?:information"
        r"|details)|(?:that|this) way|first(?:ly)?|to begin with|first and foremost|before (?:we|i|you))\b",
    ),
    (  # thanks, appreciation, apologies, empathy
        "courtesy",
        rf"(?:(?:many |huge |big )?(?:thanks|thank you|ty)|much appreciated|appreciate (?:it|that|your)"
        rf"|(?:i|we) {_ADV}(?:appreciate|commend|applaud|value)|you{_BE} {_ADV}welcome"
        rf"|(?:it's |it is |a |my )*pleasure|congratulations|congrats|(?:i|we){_BE} {_ADV}sorry"
        rf"|(?:so |very |really |terribly )?sorry|(?:my |our )?apologies|(?:i|we) {_ADV}apologi[sz]e"
        rf"|(?:i|we)(?:'ve)? {_ADV}(?:understand|understood|reali[sz]ed?|recogni[sz]e|see|hear|get|grasp"
        r"|sense|know|imagine|feel|acknowledge|empathi[sz]e|take note|note|gather|catch on|pick up"
        rf"|come to understand)|(?:i|we){_BE} {_ADV}(?:aware|cognizant|conscious|mindful|attuned"
        r"|tuned into|in tune with|clued in|not mistaken|following|with you|on the same page|keyed into"
        r"|picking up|listening|here for you|on it)|that(?:'s| is| sounds| must be| must have been|'d be)"
        r" (?:\w+ly |so |very |a )?(?:frustrating|annoying|stressful|difficult|disappointing|upsetting"
        r"|great|good|wonderful|fantastic|amazing|excellent|understandable|helpful|appreciated)"
        r"|it's (?:only )?(?:natural|normal|understandable)|you're not alone"
        r"|(?:don't|do not|no need to|not to) worry|fear not|it may seem|got it|understood)\b",
    ),
    (  # offers of help and what the agent will do
        "courtesy",
        rf"(?:{_SUBJ}(?:'m|'re|'d|'ll|\s+am|\s+are|\s+is|\s+would|\s+will)?(?:\s+be)? {_ADV}(?:happy"
        r"|glad|delighted|pleased|thrilled|excited|eager|flattered|here|able|ready)(?: to| for| about"
        rf"| that|\b)|{_SUBJ}(?:'re| are| is) available to (?:help|assist)|(?:happy|glad) to help"
        rf"|(?:glad|happy|pleased) (?:i|we) (?:was |were |am |are |could |can )?(?:able to )?(?:help|assist)"
        rf"|(?:happy|glad|pleased) to be of (?:service|help|assistance)|help's here|that's what we're here for"
        rf"|(?:i|we){_BE} (?:just |only )?a (?:message|call|click) away"
        rf"|{_SUBJ}\s?(?:can|could|'d like to|would like to|'d love to|would love to|want to|will|'ll"
        rf"|shall|'m going to|am going to) {_ADV}{_VERBS}|let's|let us (?:take|make|explore|begin|get)"
        r"|(?:please )?(?:allow|give|let) me(?! know)|(?:just |one |a )?(?:moment|second) (?:please|while)"
        r"|one moment|just a moment)",
    ),
    (  # commitments, goals, values, why the agent asks for details
        "courtesy",
        rf"(?:(?:i|we){_BE} {_ADV}(?:committed|dedicated|determined|doing)"
        r"|(?:our team|we)(?:'re| are| is) working|(?:i|we) (?:\w+ )?(?:strive|aim|endeavou?r) to"
        r"|(?:i|we) take [\w' ]+ seriously"
        r"|(?:i|we) (?:want|would like|'d like) to (?:express|extend|ensure|make sure|provide|help|assist)"
        r"|(?:they|our (?:[\w-]+ ){0,3}team) ha(?:ve|s) the (?:expertise|experience|knowledge|tools)"
        r"|here(?:'s| is| are) (?:how|what|the (?:\w+ )?steps)"
        r"|(?:you can |please |simply |just )?follow these (?:\w+ )*(?:steps|instructions)"
        r"|(?:my|our) (?:\w+ )?(?:goal|priority|aim|mission) is|it's my (?:\w+ )?goal"
        r"|(?:it's|it is) (?:\w+ )?(?:important|essential|crucial) (?:to|for|that)"
        r"|(?:[\w'-]+ ){1,4}?(?:will )?(?:\w+ly )?(?:allows?|enables?|helps?|assists?"
        r"|be (?:\w+ly )?(?:helpful|appreciated)) (?:me|us)|(?:this|that|it|any (?:\w+ )?details) will be"
        r" (?:\w+ly )?(?:helpful|appreciated)|(?:[\w'-]+ ){1,12}?(?:is|are|means?|will be) (?:\w+ ){0,3}?"
        r"(?:important|valuable|invaluable|valued|appreciated|commendable|essential|crucial|priority|a lot"
        r"|everything))\b",
    ),
    (  # wishes, sign-offs, invitations to get back in touch (a channel named in the tail is content)
        "courtesy",
        r"(?:(?:good)?-?bye|farewell|have (?:yourself )?an? |(?:best|kind|warm|warmest"
        r"|kindest) (?:regards|wishes)|regards|sincerely|cheers|take care|stay safe|all the best|good luck"
        r"|enjoy|embrace|get ready to|(?:i|we) hope|hope|hopefully|keep us posted|talk soon|see you"
        rf"|(?:we|i)(?:'d| would) love to hear|(?:we|i){_BE}? look(?:ing)? forward"
        r"|(?:please )?(?:feel free|(?:do not|don't|never) hesitate)(?: to)?|(?:just |simply )?(?:reach out"
        r"|contact (?:us|me|them)|get in touch|give us a shout|let (?:me|us) know|reply to this message))",
    ),
    (  # questions and requests for details
        "ask",
        rf"(?:{_AUX}\s+(?:you|i|we|it|this|that|there|your|the|any)\b|(?:{_AUX}|what|which|when|where|who"
        r"|how|why)\b(?=[^.;:!?]*\?)|you\b(?=[^.;:!?]*\?)|(?:just )?to (?:verify|confirm|check|clarify)\b"
        r"|(?:please |kindly |just )*(?:provide|share(?! that)|send|dm|tell|confirm(?! that)|verify|reply"
        r"|message us|join us|follow us|drop us)\b|(?:i|we)(?:'d| would| will)? (?:just |also )?need"
        r" (?:your|you to|a|the|some|more)\b|(?:i|we) (?:\w+ )?request(?! you to (?:visit|navigate|go|log"
        r"|click))|(?:i|we)(?:\s+would|'d)? (?:like|want) to (?:ask|know)|specifically)",
    ),
]
_FAMILIES = [(kind, re.compile(pattern, re.I)) for kind, pattern in _FAMILIES]
_FILLER = re.compile(
    r"(?:[\s.,;:!?()\"'*&/~=<>_-]+|(?:(?:for )?sure(?: thing)?|of course|absolutely|indeed|certainly"
    r"|definitely|unquestionably|no (?:worries|problem)(?: at all)?|not to worry|okay|ok|great(?: question)?"
    r"|perfect|yes|rest assured(?: that)?|remember|again|also|and|but|so|as|because|since|please|together"
    r"|right|alright|x|that's a great choice|(?:(?:i|we|let me) (?:can |do |want to |would like to"
    r" |'d like to )?)?(?:assure|promise|tell|advise|notify|inform) you(?: that)?|let you know(?: that)?"
    r"|(?:say|report|announce|confirm|share) that)\b)*",
    re.I,
)
_VOCATIVE = re.compile(r"(?:(?:Mr|Mrs|Ms|Dr)\.?\s)?[A-Z][a-z]+(?:\s[A-Z][a-z]+)?(?=\s*(?:[.!?]|$))")
_BARE_QUESTION = re.compile(r"[^.!;:]*\?+[\s\"')]*")  # one question, nothing stated before it
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+|[A-Z]{2,}")  # a capitalised word inside the sentence, an acronym
_INTERJECTION = (
    r"(?:yeah|yes|yep|yup|wow|oh|ah|aw|haha|lol|hmm|well|sure|right|true|indeed|really|totally|definitely"
    r"|absolutely|exactly|okay|ok|cool|nice|great|awesome|agreed|same|me too|i see|makes sense|fair enough"
    r"|good point|no idea|not sure|i don't know|i do not know)"
)
_EVALUATION = (
    r"(?:cool|great|nice|awesome|amazing|interesting|fun|funny|talented|true|right|good|bad|sad|crazy|wild"
    r"|neat|impressive|beautiful|lovely|wonderful|fascinating|incredible|cute|scary|weird|strange|hard|easy"
    r"|popular|famous|smart|fantastic|terrible|horrible|exciting|surprising|sweet|hilarious)"
)
_REACTION = re.compile(  # a whole sentence of interjections and a bare opinion or agreement
    rf"(?:{_INTERJECTION}[\s,!.]*)*(?:(?:i|we) (?:really |totally |also |do |definitely )?(?:love|like|enjoy"
    r"|agree|think so|know|bet|hope so|guess so)(?: (?:it|that|this|them|him|her|you|so|too))?"
    r"|(?:it|that|this|he|she|they|you|i|we)(?: (?:really|truly|definitely|sure))?(?:'s|'re|'m| is| are| am"
    r"| was| were| can| can't| could| did| does| do| will| would)(?: not)?(?: (?:so|very|really|pretty"
    rf"|quite|too|such|also|just))*(?: an?)?(?: {_EVALUATION})?(?: (?:one|show|idea|thing|song|movie|book"
    r"|place|story|game|team|band|guy|person))?(?: too)?|sounds (?:good|great|fun|interesting|cool)|"
    rf"{_INTERJECTION})?[\s,!.?]*",
    re.I,
)
# A request or condition about a third party, or one with a consequence, states a procedure (a policy manual's
# "Tell the customer ...", "If the item is lost then ..."), not a question to the reader.
_INSTRUCTION = re.compile(
    r"\b(?:the (?:customer|client|user|caller|agent)s?|customers|their|they|them|then)\b", re.I
)
_TITLE = re.compile(r"(?<=[a-z] )[A-Z][\w'&-]*(?: [A-Z][\w'&-]*)+")  # a name of two capitalised words or more
_FACT_QUESTION = re.compile(r"\b(?:did you know|were you aware|have you heard|fun fact)\b", re.I)
_STOP = (  # where a tail ends; "confirm", "that" after "assure you", ... open a statement
    r"[.;:!?]+(?=[\s\"')]|$)|[—–]|\s-\s|\b(?:confirm|inform you|(?:to )?(?:say|report|announce)"
    r"|(?:let you know|tell you|advise you|notify you|assure you|share) that)\b"
)
_NEW_CLAUSE = (
    r",\s*(?:and|but|so|which|who|where|as|because|however|though|while|we|i|you|it|they|our|that|this"
    r"|there|he|she|please|feel|just|could|can|would|will|may|is|are|do|does|if|once|otherwise|then|yet)\b"
)
_TAIL_END = {
    "opener": re.compile(rf"{_STOP}|,", re.I),
    "courtesy": re.compile(rf"{_STOP}|{_NEW_CLAUSE}", re.I),
    "ask": re.compile(rf"{_STOP}|,\s*(?:as|because|since|but|which|so|though|although)\b", re.I),
}
_WHEN = (
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekdays?|weekends?|january|february"
    r"|march|april|june|july|august|september|october|november|december|tomorrow|tonight|yesterday|morning"
    r"|noon|midnight|(?:one|two|three|four|five|six|seven|eight|nine|ten|a few|several)"
    r" (?:minutes?|hours?|days?|weeks?|months?|years?))\b"
)
_ASK_CONTENT = re.compile(  # amounts, times, dates, durations
    rf"{_WHEN}|[$€£]\s?\d|\d\s?(?:%|am\b|pm\b)|\d:\d\d|\d+\s*(?:minutes?|hours?|days?|weeks?|months?)", re.I
)
_CONTENT = re.compile(
    rf"{_WHEN}|\d|https?://|\S@\S|\b(?:(?<!-)free|fees?|charge[sd]?|costs?|prices?|within|available|opens?"
    r"|closes?|closed|hours|policy|policies|warranty|guarantee[sd]?|complimentary|refundable|eligib\w+"
    r"|included|includes?|only|always|never|via|live ?chat|chat|phone|call(?:ing)?|hotline|website|site|app"
    r"|online|portal|stores?|branch(?:es)?|in person|section|page|settings|menu|button|tab|link|stock)\b",
    re.I,
)
# Placeholders ({{Order Number}}) are neutral unless their name says contact details, hours, dates or prices.
_VALUE_SLOT = re.compile(
    r"\{\{[^{}]*(?:phone|hours|url|site|mail|address|date|time|fee|price)[^{}]*\}\}", re.I
)
_TWEET_NOISE = re.compile(r"^(?:@\w+\s*)+|(?:\s*(?:https?://\S+|\b\d/\d\b|[\^/–-]\s?[A-Z]\w*))+\s*$")


def is_checkable(sentence: str) -> bool:
    """Whether ``sentence`` (one claim of an answer) states something the knowledge can support or contradict:
    False for pure courtesy ("I'm sorry to hear that."), True otherwise ("Sorry, refunds take 5 days.")."""
    text = _normalise(sentence)
    if _FACT_QUESTION.search(text):
        return True
    if _REACTION.fullmatch(text):
        return False  # "Yeah, it really is!", "I love it.", "She's so talented!": a reaction, no fact
    if _BARE_QUESTION.fullmatch(text) and not _ASK_CONTENT.search(text) and not _NAME.search(text):
        return False  # a question with no amount, time, date or name in it asks, and asserts nothing
    pos = _skip(text, 0)
    while pos < len(text):
        kind, match = next(((k, m) for k, p in _FAMILIES if (m := p.match(text, pos))), (None, None))
        if match is None:
            return True  # a clause that is not courtesy
        stop = _TAIL_END[kind].search(text, max(match.end(), pos + 1))
        end = stop.start() if stop else len(text)
        if (_CONTENT if kind == "courtesy" else _ASK_CONTENT).search(text, match.end(), end):
            return True
        if kind in ("ask", "opener") and _INSTRUCTION.search(text, match.start(), end):
            return True  # "Confirm their order can be returned", "If the customer chose X then ...": policy
        if kind == "ask" and _TITLE.search(text, match.end(), end):
            return True  # "How about the Ace Hotel?" proposes something that must exist
        pos = _skip(text, end)
    return False


def _skip(text: str, pos: int) -> int:
    """Position after the filler, punctuation and names of address ("Mr. Patel!") from ``pos``."""
    while name := _VOCATIVE.match(text, pos := _FILLER.match(text, pos).end()):
        pos = name.end()
    return pos


def _normalise(sentence: str) -> str:
    """Placeholders, links, emoji, list markers, list-item headings and tweet handles made plain."""
    text = sentence.replace("’", "'").replace("‘", "'").replace("&gt;", ">").replace("&amp;", "&")
    text = _VALUE_SLOT.sub("0", text)  # a phone number, opening hours, a date...: checkable values
    text = re.sub(r"\{\{[^{}]*\}\}", "x", text)
    text = re.sub(r"(?:https?://|www\.)[^\s\]]+", "https://link", text)
    text = re.sub(r"[\U0001F000-\U0001FFFF\u2600-\u27BF]+", ". ", text)  # an emoji often ends a sentence
    text = re.sub(r"[^\w\s.,;:!?()\[\]'\"$€£%&/@#*+<>=~^—–-]", " ", text)
    previous = None
    while previous != text:
        previous, text = text, _TWEET_NOISE.sub("", text.strip())
    text = re.sub(r"^(?:\d+[.)]|[-*•])\s+", "", text).replace("**", "")
    text = re.sub(r":\s*\d+\.?$", ":", text)  # "follow these steps: 1." (a list starts)
    text = re.sub(r"^[A-Z][\w'-]*(?: [\w'-]+){0,4}:\s", "", text)  # a list item's heading "Sign In: ..."
    return " ".join(text.split())
