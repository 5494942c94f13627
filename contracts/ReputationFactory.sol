// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Reputation} from "./Reputation.sol";

/// @title PBTS ReputationFactory: creates Reputation contracts and keeps their registry.
/// @notice Anyone may create a Reputation (a site is whoever runs one); what the original let
/// anyone do and we do not is *inherit* from a site: a new contract can name as referrer only a
/// contract of this registry, and it may copy records from it only once that referrer's owner
/// endorsed it (`Reputation.approveSuccessor`). `isEndorsed` tells a reader whether a contract is
/// an endorsed successor. The registry records who created each contract, from which referrer,
/// and the hash of the attestation (for example a TEE quote) given at creation.
contract ReputationFactory {
    /// @notice Largest attestation accepted, bytes.
    uint256 public constant MAX_ATTESTATION_BYTES = 8192;

    struct Entry {
        address creator; // non-zero for every contract of the registry
        uint64 createdAt; // unix seconds
        address referrer;
        bytes32 attestationHash; // keccak256 of the attestation bytes
    }

    /// @notice Registry entry of each contract created here (creator zero: not ours).
    mapping(address => Entry) public registry;
    /// @notice Every contract created here, oldest first.
    address[] public reputations;

    event ReputationCreated(
        address indexed newAddress, address indexed owner, address indexed referrer, bytes attestation
    );

    error UnknownReferrer(address referrer);
    error AttestationTooLarge(uint256 size, uint256 max);

    /// @notice Deploy a Reputation owned by the caller with `referrer` as its predecessor
    /// (zero for none). Reverts `UnknownReferrer` when the referrer is not in this registry,
    /// `AttestationTooLarge` above `MAX_ATTESTATION_BYTES`.
    /// @return newAddress the new contract
    function createReputation(address referrer, bytes calldata attestation) external returns (address newAddress) {
        if (referrer != address(0) && registry[referrer].creator == address(0)) revert UnknownReferrer(referrer);
        if (attestation.length > MAX_ATTESTATION_BYTES) {
            revert AttestationTooLarge(attestation.length, MAX_ATTESTATION_BYTES);
        }
        newAddress = address(new Reputation(msg.sender, referrer));
        registry[newAddress] = Entry(msg.sender, uint64(block.timestamp), referrer, keccak256(attestation));
        reputations.push(newAddress);
        emit ReputationCreated(newAddress, msg.sender, referrer, attestation);
    }

    /// @notice Whether `reputation` was created here.
    function isReputation(address reputation) external view returns (bool) {
        return registry[reputation].creator != address(0);
    }

    /// @notice Whether `reputation` was created here with a referrer whose owner endorsed it.
    function isEndorsed(address reputation) external view returns (bool) {
        Entry memory e = registry[reputation];
        if (e.creator == address(0) || e.referrer == address(0)) return false;
        return Reputation(e.referrer).approvedSuccessor(reputation);
    }

    /// @notice Number of contracts created here.
    function reputationCount() external view returns (uint256) {
        return reputations.length;
    }
}
