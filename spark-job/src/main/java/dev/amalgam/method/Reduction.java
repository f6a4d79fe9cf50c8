package dev.amalgam.method;

/** How a statistic reduces its operand(s) over its scope. All are exact, so order never matters. */
public enum Reduction {
    /** The position-th entry of the ascending order of |a| (ties by lower flat index). */
    ORDER,
    /** Sum of |a|. */
    ABS_SUM,
    /** Sum of a * b (a * a for a sum of squares): exact, signed, rounded once. */
    DOT,
    /** Sum of a, signed: exact, rounded once. */
    SUM,
    /** How many entries of a are not zero. */
    NONZERO,
    /** The sum of sign(a): positive entries minus negative ones, exact. */
    SIGN_SUM
}
