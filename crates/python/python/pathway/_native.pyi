from typing import Any, Dict, List, Optional, Tuple, Union

class PathwayError(Exception): ...
class RuleSetError(PathwayError): ...
class ValueSetError(PathwayError): ...
class FhirError(PathwayError): ...
class ProfileError(PathwayError): ...

class RuleSet:
    @staticmethod
    def ms_spasticity() -> RuleSet: ...
    @staticmethod
    def load(path: str) -> RuleSet: ...
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...

class ValueSets:
    @staticmethod
    def ms_spasticity(ruleset: RuleSet) -> ValueSets: ...
    @staticmethod
    def load(path: str, ruleset: RuleSet) -> ValueSets: ...

def evaluate_bundle(
    ruleset: RuleSet,
    bundle: Union[bytes, str],
    date: str,
    valuesets: Optional[ValueSets] = ...,
    strict: bool = ...,
    summary: bool = ...,
) -> Union[str, Dict[str, Any]]: ...
def evaluate_profile(ruleset: RuleSet, profile: str) -> str: ...
def evaluate_many(
    ruleset: RuleSet,
    bundles: Union[List[Union[bytes, str]], Tuple[Union[bytes, str], ...], Any],
    date: str,
    valuesets: Optional[ValueSets] = ...,
    workers: Optional[int] = ...,
    strict: bool = ...,
    summary: bool = ...,
) -> List[Tuple[Optional[Union[str, Dict[str, Any]]], Optional[str]]]: ...
def evaluate_table(
    ruleset: RuleSet,
    bundles: Union[List[Union[bytes, str]], Tuple[Union[bytes, str], ...], Any],
    date: str,
    valuesets: Optional[ValueSets] = ...,
    workers: Optional[int] = ...,
    strict: bool = ...,
) -> Any: ...
