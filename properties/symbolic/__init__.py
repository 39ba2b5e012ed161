"""Z3 encodings of the components' properties, one module per component.

What an encoding is made of — :class:`Encoding`, its variables, actions,
properties and obligations — is :mod:`properties.symbolic.encoding`; the
names are imported here because every encoding module and the z3 engine
import them from the package.
"""

from kubemc.properties.symbolic.encoding import (Action, Encoding, Key, Obligation, SymProperty,
                                                 SymState, Var, count)

__all__ = ["Action", "Encoding", "Key", "Obligation", "SymProperty", "SymState", "Var", "count"]
